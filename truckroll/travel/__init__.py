"""Travel times: the provider configured for this installation, and openrouteservice."""
