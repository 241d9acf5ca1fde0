"""The offline audit of recorded updates (``fedaudit audit --observed DIR``): attacks run on
what a deployment's server saw, read from disk (:mod:`audit.fl.recorded_updates`), with no
simulation.

* :mod:`audit.observed.views`: the model from the recorded entry point, the tensors checked
  against it, one attack view per recorded update.
* :mod:`audit.observed.reconstruction`: gradient inversion and label recovery, scored
  against the ground truth when ``truth/`` has it, else the reconstructions and their
  gradient distance.
* :mod:`audit.observed.membership`: the update-based membership attack on recorded
  candidates.
* :mod:`audit.observed.offline_audit`: the findings of one attack on one directory.
"""
