"""Face detection and expression classification. Face crops never leave this package."""
