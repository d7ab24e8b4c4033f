"""Virtual LoRaWAN devices that speak what The Things Stack speaks (see issue 4 for the fleet)."""
