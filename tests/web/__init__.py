"""Tests of the central web app: JSON API, status page, live updates in a browser."""
