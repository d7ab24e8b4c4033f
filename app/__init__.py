"""bauhof-sense: LoRaWAN sensors for a municipal works yard."""

__version__ = "0.1.0"
