"""Bottom layer: errors, registries, threat models, seeding, devices."""
