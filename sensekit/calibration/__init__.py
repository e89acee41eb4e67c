"""The installer's tools and the models' evaluation.

`sensekit calibrate zones|faces|audio|speech` fit one device to its site: each measures
something there (a snapshot, a short recording, the background noise, staff speech), prints
what it set and why, and writes the settings into the config through `config_edit` (comments
kept, validated before writing). Nothing they see is stored on the device.

`sensekit eval` (`evaluate/`) measures both models on labelled data and fits the confidence
temperature the runtime applies.
"""
