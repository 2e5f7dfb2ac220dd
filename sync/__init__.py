"""What stations and central share: the order, the wire format, topics, event catalogue, MQTT session."""
