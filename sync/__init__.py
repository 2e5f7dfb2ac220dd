"""What stations and central share: the wire format, topics, event catalogue, MQTT session."""
