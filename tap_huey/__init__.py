"""Singer tap for Huey Clinician Data."""
