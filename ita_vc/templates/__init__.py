"""Files ita-vc init writes (package data)."""
