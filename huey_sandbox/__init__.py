"""A local Caspio REST API with synthetic Huey data."""
