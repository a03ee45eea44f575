"""``python -m experiments``: see `experiments.cli`."""

from absl import app

from experiments import cli

if __name__ == "__main__":
    app.run(cli.main)
