"""Typed records of what a run produced.

``RunMetrics`` (a run folder's metrics.json) and ``JobOutcome`` (what a finished app job hands to the pages).

Plain Python, no Streamlit. Absent values are ``None``. Reading is tolerant, because run folders outlive the code
that wrote them: a missing key reads as None, and so does a value of the wrong type (kept aside, see
``RunMetrics.invalid``, so that nothing is lost). Only something that is not a JSON object at all is refused, with
the ``RunFolderError`` the Runs page already shows for a damaged file.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from dip.core.errors import RunFolderError

_ABSENT = object()  # a value of the wrong type, as a reader sees it


def _text(v: Any) -> Any:
    return v if isinstance(v, str) else _ABSENT


def _whole(v: Any) -> Any:
    # bool is an int to Python, never a count to a reader; numpy integers come from in-memory writers.
    return v if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) else _ABSENT


def _real(v: Any) -> Any:
    return v if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) else _ABSENT


def _flag(v: Any) -> Any:
    return v if isinstance(v, (bool, np.bool_)) else _ABSENT


def _shape(v: Any) -> Any:
    if isinstance(v, (list, tuple)) and all(_whole(n) is not _ABSENT for n in v):
        return tuple(v)
    return _ABSENT


def _targets(v: Any) -> Any:
    if isinstance(v, Mapping) and all(isinstance(k, str) and isinstance(t, Mapping) for k, t in v.items()):
        return v
    return _ABSENT


def _read(kind: Callable[[Any], Any], doc: str):
    """Declare a modelled metrics.json key: None by default.

    ``kind`` accepts a value read from the file (or refuses it); ``doc`` says what the key holds.
    """
    return field(default=None, metadata={"kind": kind, "doc": doc})


@dataclass(frozen=True, kw_only=True)
class RunMetrics:
    """What a run's ``metrics.json`` holds, one typed field per key the app and the command line read.

    Writers: ``dip.core.tasks.summarize`` (task … final_input, the ``*_known_kept`` and ``*_border_excluded``
    PSNRs), the app's runner (job_id, source, created, stop_reason, resumed_after_restart, mask, kept_fraction,
    blind, status, error), ``dip.core.impedance.write_impedance_run`` (targets), the command line (image,
    resumed_from) and ``dip.lab.reproduce`` (the ES-EMV and border-excluded PSNRs). Every field is None when the
    file does not have it, holds null, or holds a value of the wrong type.

    Keys are kept exactly (``from_dict(d).to_dict() == d`` for any dict of string keys): keys that are not fields
    go to ``extra``, values of the wrong type to ``invalid``, and ``present`` remembers which keys the dict had, in
    its order, so that a key that was absent stays absent and one that was null stays null. A record made with
    the constructor (``present`` empty) writes its fields that are not None, then ``extra``; a writer that wants
    explicit nulls names those keys in ``present`` (``SUMMARY_KEYS`` for what ``summarize`` always writes).

    Records compare by value, ``present`` aside. They are not hashable (``targets`` and ``extra`` are mappings).

    Parameters
    ----------
    task, preset, iterations, ..., mask, kept_fraction : optional
        One keyword per metrics.json key in ``FIELDS``, each None by default; a field's ``metadata["doc"]`` says
        what it holds (PSNRs in dB against the ground truth, times in seconds).
    extra : Mapping, optional
        Keys that are not fields, as found.
    invalid : Mapping, optional
        Fields whose value had the wrong type, with the value as found.
    present : sequence of str, optional
        The keys of the dict the record was read from, in order; stored as a tuple.

    Raises
    ------
    ValueError
        If ``extra`` holds a field's key or ``invalid`` a key that is not a field.
    """

    task: Optional[str] = _read(_text, '"denoise", "sr", "inpaint" or "impedance"')
    preset: Optional[str] = _read(_text, "the preset's name")
    iterations: Optional[int] = _read(_whole, "iterations done (impedance: planned per target)")
    parameters: Optional[int] = _read(_whole, "weights of the network")
    seconds: Optional[float] = _read(_real, "wall-clock seconds of the fit(s)")
    device: Optional[str] = _read(_text, 'torch device, e.g. "cpu"')
    precision: Optional[str] = _read(_text, '"fp32", "bf16" or "fp16"')
    seed: Optional[int] = _read(_whole, "the fit's seed")
    cancelled: Optional[bool] = _read(_flag, "stopped before its last iteration")
    shape: Optional[tuple[int, ...]] = _read(_shape, "working image (H, W, C); a list in the file")
    psnr_observed: Optional[float] = _read(_real, "degraded input vs ground truth (dB; inf: identical)")
    psnr_final: Optional[float] = _read(_real, "final output vs ground truth")
    psnr_ema: Optional[float] = _read(_real, "EMA of the outputs vs ground truth")
    psnr_best: Optional[float] = _read(_real, "best iterate (oracle) vs ground truth")
    best_iteration: Optional[int] = _read(_whole, "iteration of the best iterate")
    psnr_blind: Optional[float] = _read(_real, "ES-WMV pick vs ground truth")
    blind_iteration: Optional[int] = _read(_whole, "iteration of the ES-WMV pick")
    blind_confirmed: Optional[bool] = _read(_flag, "the pick outlived the detector's patience")
    early_stop: Optional[str] = _read(_text, '"wmv", "emv" or "none"')
    es_window: Optional[int] = _read(_whole, "the detector's window (iterations)")
    es_patience: Optional[int] = _read(_whole, "the detector's patience (iterations)")
    final_input: Optional[str] = _read(_text, 'input of the final forward pass, "perturbed" or "clean"')
    psnr_final_known_kept: Optional[float] = _read(_real, "inpainting: final output with the observed pixels kept")
    psnr_ema_known_kept: Optional[float] = _read(_real, "inpainting: EMA with the observed pixels kept")
    psnr_final_border_excluded: Optional[float] = _read(_real, "final output, a border left out")
    psnr_ema_border_excluded: Optional[float] = _read(_real, "EMA, a border left out")
    psnr_observed_border_excluded: Optional[float] = _read(_real, "degraded input, a border left out")
    psnr_best_border_excluded: Optional[float] = _read(_real, "best iterate, a border left out")
    psnr_blind_border_excluded: Optional[float] = _read(_real, "ES-WMV pick, a border left out")
    psnr_blind_emv: Optional[float] = _read(_real, "ES-EMV pick vs ground truth (dip reproduce)")
    blind_iteration_emv: Optional[int] = _read(_whole, "iteration of the ES-EMV pick")
    psnr_blind_emv_border_excluded: Optional[float] = _read(_real, "ES-EMV pick, a border left out")
    targets: Optional[Mapping[str, Mapping[str, Any]]] = _read(_targets, "impedance: per target name, its fit")
    blind: Optional[bool] = _read(_flag, "no ground truth")
    status: Optional[str] = _read(_text, '"done", "cancelled" or "error" (app runs)')
    error: Optional[str] = _read(_text, "why a failed app run failed")
    job_id: Optional[str] = _read(_text, "the app job's id (app runs only)")
    source: Optional[str] = _read(_text, "the uploaded or sample image's name (app)")
    image: Optional[str] = _read(_text, "the image file's name (command line, dip reproduce)")
    created: Optional[str] = _read(_text, 'when the app accepted the job, "%Y-%m-%d %H:%M:%S"')
    stop_reason: Optional[str] = _read(_text, "why the server stopped the job early")
    resumed_after_restart: Optional[bool] = _read(_flag, "continued from a checkpoint after a server restart")
    resumed_from: Optional[int] = _read(_whole, "command line: the checkpoint's iteration it continued from")
    mask: Optional[str] = _read(_text, "inpainting: the mask's kind (dip.lab.report.MASK_KINDS)")
    kept_fraction: Optional[float] = _read(_real, "inpainting: share of known pixels")
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys that are not fields (e.g. ``emv_side_detector``), as found."""
    invalid: Mapping[str, Any] = field(default_factory=dict)
    """Keys of fields whose value had the wrong type (the field reads None), with the value as found."""
    present: tuple[str, ...] = field(default=(), compare=False)
    """The keys of the dict the record was read from, in order (``to_dict`` writes them back)."""

    def __post_init__(self):
        """Check that ``extra`` holds no field and ``invalid`` only fields (raises ValueError)."""
        wrong = [k for k in self.extra if k in _KINDS] + [k for k in self.invalid if k not in _KINDS]
        if wrong:
            raise ValueError(f"RunMetrics: extra takes keys that are not fields, invalid only fields ({wrong})")
        object.__setattr__(self, "present", tuple(self.present))

    @classmethod
    def from_dict(cls, data: object, *, run_id: str = "") -> RunMetrics:
        """Read a metrics.json object (or a writer's dict) into a record.

        Parameters
        ----------
        data : object
            The decoded JSON. Missing keys and values of the wrong type read as None.
        run_id : str, optional
            The run's folder name, for the error message.

        Returns
        -------
        RunMetrics
            A record whose ``to_dict()`` equals ``data``.

        Raises
        ------
        RunFolderError
            When ``data`` is not a mapping (a metrics.json holding a list, a string, a number…).
        """
        if not isinstance(data, Mapping):
            raise RunFolderError(f"metrics.json is not a JSON object (it holds {_kind(data)}).", run_id=run_id)
        values, extra, invalid = {}, {}, {}
        for key, value in data.items():
            kind = _KINDS.get(key)
            if kind is None:
                extra[key] = value
            elif value is not None:
                read = kind(value)
                if read is _ABSENT:
                    invalid[key] = value
                else:
                    values[key] = read
        return cls(**values, extra=extra, invalid=invalid, present=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """Return the metrics.json object of this record.

        It is JSON-ready but for numpy scalars, which ``write_json`` handles.

        Returns
        -------
        dict
            First the keys in ``present``, in that order (a field that is None there is written as null, or as
            its ``invalid`` value), then the other fields that are not None in declaration order, then ``extra``.
        """
        out: dict[str, Any] = {}
        for key in self.present:
            if key in FIELDS:
                out[key] = self._value(key)
            elif key in self.extra:
                out[key] = self.extra[key]
        for key in FIELDS:
            if key not in out and (getattr(self, key) is not None or key in self.invalid):
                out[key] = self._value(key)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def _value(self, key: str) -> Any:
        value = getattr(self, key)
        if value is None:
            return self.invalid.get(key)
        return list(value) if key == "shape" else value

    @property
    def run_status(self) -> str:
        """The recorded status, else "cancelled" or "done" from ``cancelled``.

        The fallback serves runs written before the app recorded a status, and command-line runs.
        """
        return self.status or ("cancelled" if self.cancelled else "done")

    @property
    def source_name(self) -> Optional[str]:
        """The name of the image the run restored, from ``source`` or else ``image``.

        The app records the upload's name (``source``), the command line and ``dip reproduce`` the image file's
        (``image``), so their run folders (docs/runs/) open in the app too.
        """
        return self.source or self.image


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunMetrics) if "kind" in f.metadata)
"""The metrics.json keys ``RunMetrics`` models, in declaration order."""
_KINDS = {f.name: f.metadata["kind"] for f in dataclasses.fields(RunMetrics) if "kind" in f.metadata}

SUMMARY_KEYS: tuple[str, ...] = FIELDS[: FIELDS.index("final_input") + 1]
"""The keys ``dip.core.tasks.summarize`` always writes, null or not (``present=SUMMARY_KEYS`` keeps that)."""

_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def _kind(data: object) -> str:
    # The words of dip.core.runio.read_json_object, so both say the same of the same file.
    return "null" if data is None else _JSON_KINDS.get(type(data), "something else")


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """What a finished app job hands to the pages (``ui.service.runners.run_job``), or a run folder read back.

    ``images`` are uint8 previews by name ("result", "result_ema", "best", "blind", "observed", "ground_truth",
    "result_known_kept", a baseline's name, "target:NAME" / "result:NAME" for impedance). ``baselines`` are
    ``dip.core.baselines.Baseline.as_record()`` dicts (name, label, psnr, seconds, settings; ``image`` when read
    from a folder). Records compare by value, images aside (arrays do not compare as one value).

    Parameters
    ----------
    metrics : RunMetrics or None, optional
        The run's metrics.json record; None when the run recorded nothing.
    cancelled : bool, optional
        Whether the job was stopped before its last iteration. Default False.
    baselines : tuple of Mapping, optional
        The classical baselines' records.
    images : Mapping of str to ndarray, optional
        uint8 (H, W, C) previews by name.
    run_dir : str or None, optional
        The run's folder, once written.
    """

    metrics: Optional[RunMetrics] = None
    cancelled: bool = False
    baselines: tuple[Mapping[str, Any], ...] = ()
    images: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False)
    run_dir: Optional[str] = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobOutcome:
        """Make the record of a runner's dict: keys "metrics", "cancelled", "baselines", "images", "run_dir".

        Parameters
        ----------
        data : Mapping
            Missing keys take their defaults; "metrics" may be a dict or a ``RunMetrics`` (an empty dict counts as
            none: the run recorded nothing); a value of the wrong type takes the default.

        Returns
        -------
        JobOutcome
            The record; ``to_dict()`` gives the dict back with every key present.

        Raises
        ------
        TypeError
            When ``data`` is not a mapping (a runner's mistake, never a damaged file).
        RunFolderError
            When "metrics" is neither a mapping nor None.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"a job's outcome is a mapping, not {type(data).__name__}")
        metrics = data.get("metrics")
        if not isinstance(metrics, RunMetrics):
            metrics = None if metrics is None or metrics == {} else RunMetrics.from_dict(metrics)
        baselines = data.get("baselines")
        images = data.get("images")
        run_dir = data.get("run_dir")
        return cls(
            metrics=metrics,
            cancelled=bool(data.get("cancelled")),
            baselines=tuple(b for b in baselines if isinstance(b, Mapping)) if isinstance(baselines, list) else (),
            images=dict(images) if isinstance(images, Mapping) else {},
            run_dir=None if run_dir is None else str(run_dir),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the runner's dict form, every key present ("metrics" as ``RunMetrics.to_dict()``, or None).

        Returns
        -------
        dict
            "metrics", "cancelled", "baselines" (a list of dicts), "images" and "run_dir".
        """
        return {
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
            "cancelled": self.cancelled,
            "baselines": [dict(b) for b in self.baselines],
            "images": dict(self.images),
            "run_dir": self.run_dir,
        }
