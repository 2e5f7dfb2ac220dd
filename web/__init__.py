"""The central web status page and JSON API."""
