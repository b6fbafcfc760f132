"""Lightning callbacks of vaelab."""
