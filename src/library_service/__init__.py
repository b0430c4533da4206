"""Library Service: circulation API for a lending library."""
