"""Tests of the central service: storage, ingest, orders, MQTT service, CLI."""
