"""Where the OpacusRun of ``fedaudit opacus`` comes from: a built-in one, or your own file.

:func:`builtin_run` builds an :class:`audit.integrations.opacus.run.OpacusRun` on an
embedded dataset and model (for the CLI and the tests); :func:`load_run` loads yours from
``path/to/file.py:name`` (``fedaudit opacus --run``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from audit.core.errors import invalid
from audit.core.validation import check_interval, check_options
from audit.integrations.opacus.claim import ACCOUNTANTS
from audit.integrations.opacus.run import OpacusRun


#: gradient canaries ``fedaudit opacus`` puts in its built-in run (its MLP of width 128 has
#: 9,738 parameters; the Gaussian aggregate's interval shrinks as 1/sqrt(canaries))
BUILTIN_CANARIES = 4000


def builtin_run(*, dataset: str = "digits", model: str = "mlp", model_params: dict | None = None,
                noise_multiplier: float = 1.0, max_grad_norm: float = 1.0, batch_size: int = 64,
                epochs: int = 1, lr: float = 0.5, delta: float = 1e-5, accountant: str = "rdp",
                claimed_epsilon: float | None = None, limit: int | None = None,
                device: str = "cpu") -> OpacusRun:
    """An :class:`OpacusRun` on an embedded dataset and model (for the CLI and the tests):
    SGD at ``lr``, ``make_private`` with ``noise_multiplier`` and ``max_grad_norm``,
    Poisson batches of expected size ``batch_size``, ``PrivacyEngine(accountant=...)``."""
    from torch.utils.data import DataLoader, TensorDataset

    from audit.data.registry import create_dataset
    from audit.models.registry import create_model

    owner = "builtin_run"
    noise_multiplier = check_interval("noise_multiplier", owner, noise_multiplier, low=0, closed="neither")
    max_grad_norm = check_interval("max_grad_norm", owner, max_grad_norm, low=0, closed="neither")
    batch_size = check_interval("batch_size", owner, batch_size, kind=int, low=1)
    lr = check_interval("lr", owner, lr, low=0, closed="neither")
    accountant = check_options("accountant", owner, accountant, ACCOUNTANTS)
    data = create_dataset(dataset, **({"limit": limit} if limit is not None else {}))
    if data.task != "classification":
        raise invalid("dataset", owner, "a classification dataset", dataset)
    mparams = dict(model_params) if model_params else ({"hidden": 32} if model == "mlp" else {})

    def make(train_data: Dataset, seed: int):
        from opacus import PrivacyEngine

        torch.manual_seed(seed)
        net = create_model(model, input_shape=data.input_shape, num_classes=data.num_classes,
                           channel_mean=data.channel_mean, channel_std=data.channel_std, **mparams).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        loader = DataLoader(train_data, batch_size=batch_size)
        engine = PrivacyEngine(accountant=accountant)
        net, opt, loader = engine.make_private(module=net, optimizer=opt, data_loader=loader,
                                               noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm)
        return net, opt, loader, engine

    return OpacusRun(make=make, train_data=TensorDataset(data.images, data.labels), delta=delta, epochs=epochs,
                     claimed_epsilon=claimed_epsilon, num_classes=data.num_classes, dataset_name=dataset,
                     model_name=model, model_params=mparams,
                     training_params={"optimizer": "SGD", "lr": lr, "batch_size": batch_size,
                                      "epochs": epochs, "noise_multiplier": noise_multiplier,
                                      "max_grad_norm": max_grad_norm, "accountant": accountant})


def load_run(spec: str) -> OpacusRun:
    """The :class:`OpacusRun` named by ``"path/to/file.py:name"``: ``name`` is an OpacusRun
    or a function of no arguments returning one (for ``fedaudit opacus --run``)."""
    path, _, attr = str(spec).rpartition(":")
    if not path or not attr or not Path(path).is_file():
        raise invalid("run", "fedaudit opacus", "'path/to/file.py:name' naming an existing file", spec)
    mod_name = f"_fedaudit_opacus_run_{abs(hash(path))}"
    spec_obj = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[mod_name] = module
    spec_obj.loader.exec_module(module)
    obj = getattr(module, attr, None)
    if callable(obj) and not isinstance(obj, OpacusRun):
        obj = obj()
    if not isinstance(obj, OpacusRun):
        raise invalid("run", "fedaudit opacus", f"a name in {path} giving an OpacusRun", spec)
    return obj


__all__ = ["BUILTIN_CANARIES", "builtin_run", "load_run"]
