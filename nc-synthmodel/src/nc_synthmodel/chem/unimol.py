""":class:`UniMolDescriptors`: 512-d Uni-Mol v1 representations from a local weight folder.

unimol-tools and torch are imported when first used (never at import time), their
import-time side effects on logging, the working directory and the global RNGs are undone,
and the weights are read with ``torch.load(weights_only=True)``; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .computed import _check_int
from .intermediates import _NamedDescriptors
from .structures import _CHEM_HINT, Structure
from .vector import _check_consistent, _embed, _import_chem, _parse_smiles

logger = logging.getLogger(__name__)


def _unimol_files(remove_hs: bool) -> tuple[str, str]:
    from unimol_tools.config import MODEL_CONFIG

    name = "molecule_no_h" if remove_hs else "molecule_all_h"
    return MODEL_CONFIG["weight"][name], MODEL_CONFIG["dict"][name]


def _import_unimol():
    """Import unimol_tools, undoing its import-time side effects on logging and the cwd."""
    logs = Path.cwd() / "logs"
    had_logs = logs.exists()
    root_level = logging.root.level
    try:
        import unimol_tools  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"Uni-Mol descriptors need unimol-tools ({exc}); {_CHEM_HINT}") from None
    finally:
        logging.root.setLevel(root_level)  # unimol_tools sets the root logger to NOTSET
    unimol_logger = logging.getLogger("Uni-Mol Tools")
    for handler in list(unimol_logger.handlers):
        if isinstance(handler, logging.FileHandler):  # it logs to ./logs/ in the working directory
            unimol_logger.removeHandler(handler)
    unimol_logger.setLevel(logging.WARNING)
    if not had_logs and logs.is_dir() and not any(logs.iterdir()):
        logs.rmdir()


@contextmanager
def _keep_global_rng():
    """unimol_tools reseeds torch and numpy globally on every call: restore their state."""
    import torch

    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)


class UniMolDescriptors(_NamedDescriptors):
    """512-d Uni-Mol v1 molecular representations from a local weight folder (no download).

    ``weights_dir`` must hold the files unimol-tools names for the molecule model:
    ``mol_pre_all_h_220816.pt`` (``mol_pre_no_h_220816.pt`` with ``remove_hs=True``) and
    ``mol.dict.txt``, as published at https://huggingface.co/dptech/Uni-Mol-Models
    (download them on a machine with internet access and copy the folder).  The weights
    are read with ``torch.load(weights_only=True)`` and must cover the whole encoder.

    Conformers come from the same seeded ETKDG + force field as
    :class:`ComputedDescriptors` (all components of a salt; 2-D coordinates when
    embedding fails).  Solids (formula only) have no SMILES and raise.  Elements outside
    the model's token dictionary (most metals for the published weights) are ``[UNK]``.

    Parameters
    ----------
    weights_dir : path
    structures : path, sequence of Structure, or None
        As for :class:`ComputedDescriptors`.
    remove_hs : bool
        Use the model trained without hydrogens.
    batch_size : int
    random_state : int
        Seed of the conformer embedding.

    Attributes
    ----------
    structures_ : dict of str -> Structure
    model_ : unimol_tools.UniMolRepr
    n_features_ : int
        512.
    """

    _intermediate_index = None  # a Uni-Mol vector has no flag: an intermediate is the plain mean

    def __init__(
        self,
        weights_dir: str | os.PathLike,
        *,
        structures: str | os.PathLike | Sequence[Structure] | None = None,
        remove_hs: bool = False,
        batch_size: int = 16,
        random_state: int = 0,
    ):
        self.weights_dir = weights_dir
        self.structures = structures
        self.remove_hs = remove_hs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, names: Iterable[str] | None = None, y=None) -> UniMolDescriptors:
        """Check the weight files, load the model on the CPU and read the structures."""
        _check_int("random_state", self.random_state, minimum=0)
        _check_int("batch_size", self.batch_size, minimum=1)
        _import_chem()
        _import_unimol()
        import torch

        folder = Path(self.weights_dir)
        weight_name, dict_name = _unimol_files(bool(self.remove_hs))
        missing = [n for n in (weight_name, dict_name) if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"Uni-Mol weights not found: {folder} lacks {', '.join(missing)}. Put {weight_name} and {dict_name} "
                "(from https://huggingface.co/dptech/Uni-Mol-Models, downloaded on a machine with internet access) "
                "in that folder; nothing is downloaded at run time."
            )
        try:
            checkpoint = torch.load(folder / weight_name, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{folder / weight_name}: not a readable weights-only PyTorch checkpoint ({exc})") from None
        state = _state_dict(checkpoint, folder / weight_name)
        from unimol_tools import UniMolRepr

        # UniMolRepr reads the file again itself; it passed the weights-only check above.
        try:
            with _keep_global_rng():
                model = UniMolRepr(
                    data_type="molecule",
                    remove_hs=bool(self.remove_hs),
                    model_name="unimolv1",
                    use_cuda=False,
                    batch_size=int(self.batch_size),
                    pretrained_model_path=str(folder / weight_name),
                    pretrained_dict_path=str(folder / dict_name),
                )
        except RuntimeError as exc:  # load_state_dict: shapes that do not fit the architecture
            raise ValueError(f"{folder / weight_name}: does not fit the Uni-Mol v1 molecule model ({exc})") from None
        expected = {k for k in model.model.state_dict() if not k.startswith("classification_head.")}
        absent = sorted(expected - set(state))
        if absent:
            raise ValueError(
                f"{folder / weight_name}: {len(absent)} encoder weight(s) missing (e.g. {absent[:3]}); "
                "expected a Uni-Mol v1 molecule checkpoint"
            )
        self.model_ = model
        self.n_features_ = int(model.model.args.encoder_embed_dim)
        self._fit_structures(names)
        return self

    def _source(self) -> str:
        return f"Uni-Mol v1 descriptors from {self.weights_dir}"

    def _vectors(self, structures: list[Structure]) -> list[np.ndarray]:
        solids = [s.name for s in structures if s.kind == "solid"]
        if solids:
            raise ValueError(
                f"Uni-Mol needs a SMILES; {', '.join(map(repr, solids[:10]))} are solids given by formula only "
                "(use ComputedDescriptors for them)"
            )
        if not structures:
            return []
        atoms, coordinates = [], []
        for structure in structures:
            mol = _parse_smiles(structure)
            _check_consistent(structure, mol)
            symbols, xyz = self._coordinates(mol)
            atoms.append(symbols)
            coordinates.append(xyz)
        with _keep_global_rng(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pin_memory.*")  # unimol_tools' DataLoader on a CPU
            np.random.seed(self.random_state)  # unimol_tools crops molecules above 256 atoms at random
            vectors = self.model_.get_repr({"atoms": atoms, "coordinates": coordinates}, return_tensor=True)
        vectors = np.asarray(vectors.cpu().numpy(), dtype=np.float32)
        return list(vectors)

    def _coordinates(self, mol) -> tuple[list[str], np.ndarray]:
        from rdkit import Chem
        from rdkit.Chem import AllChem

        embedded = _embed(mol, self.random_state, 500)
        if embedded is None:
            embedded = Chem.AddHs(mol)
            AllChem.Compute2DCoords(embedded)
        symbols = [a.GetSymbol() for a in embedded.GetAtoms()]
        return symbols, embedded.GetConformer().GetPositions().astype(np.float32)


def _state_dict(checkpoint, path: Path) -> Mapping:
    import torch

    if isinstance(checkpoint, Mapping):
        for key in ("model", "model_state_dict"):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (optionally under 'model'), got {type(checkpoint).__name__}")
    return checkpoint
