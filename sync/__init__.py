"""What stations and central share.

The order (:mod:`sync.order`), the wire format, topics, the event catalogue and the
MQTT session.
"""
