"""The wire between stations and central: event envelope, topics, MQTT pump."""
