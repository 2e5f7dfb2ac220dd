"""Helpers shared by the tests: waiting, central's fixtures, real processes.

* :mod:`tests.support.waiting` — :func:`~tests.support.waiting.wait_for`, the one poll;
* :mod:`tests.support.central` — PostgreSQL schemas, event factories, a station-like
  MQTT client;
* :mod:`tests.support.processes` — ``packline central serve`` and ``packline edge run``
  as subprocesses, and a reader for the SQLite files they write;
* :mod:`tests.support.cli` — the console script and its command tree;
* :mod:`tests.support.brokers` — a private Mosquitto with an ACL file;
* :mod:`tests.support.siteconfig` — ``packline broker config``, Mosquitto run on exactly
  its output, clients logged in with its secrets, a throwaway certificate authority.
"""
