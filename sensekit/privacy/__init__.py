"""Privacy by construction: what may leave the device, when and where nothing is sensed, and
what visitors are told. See PRIVACY.md for the argument these modules implement."""
