"""Defaults shared by the library and the command line, in a module that imports nothing.

The command line shows them in ``--help`` without importing the modules that use them (the
training loop brings torch, seconds to import).
"""

from __future__ import annotations

#: Most epochs of training (``TrainConfig.epochs``, ``Engine.train``, ``graphfusion train
#: --epochs``); it stops early on validation Recall@20.
EPOCHS = 50
#: Most epochs of the fusion model's content taste model (``TrainConfig.taste_epochs``,
#: ``graphfusion train --taste-epochs``).
TASTE_EPOCHS = 80
#: Most user x product scores held at once to validate and test (``TrainConfig.max_scores``,
#: ``graphfusion train --max-scores``).
MAX_SCORES = 100_000_000
#: Largest integer setting of training (``TrainConfig``: epochs, dim, seed, ...).
MAX_SETTING = 2**31 - 1
