"""Experiment configs: `base` holds what every model shares; ``<model>.py`` adds the rest.

``python train.py --model=NAME`` reads ``configs/NAME.py``; ``--config=PATH`` takes any file
with a ``get_config()``, and ``--config.FIELD=VALUE`` overrides one field. `validation`
checks every field before training starts.
"""
