"""Intakes (MQTT, webhook) and the parsers that turn their JSON into ``app.model.Uplink``."""
