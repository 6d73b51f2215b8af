"""Channel: impairment models and the channel service."""
