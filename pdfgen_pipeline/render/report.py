"""The generation's record: `stderr.log` for people, `report.json` for machines."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pdfgen_pipeline.ouvrage.model import Warning_


@dataclass
class GenerationLog:
    """Human log of one generation, written line by line to `stderr.log` (and echoed if asked).

    Steps print as "Étape N sur M : …" like the former generator.
    """

    path: Path | None = None
    echo: TextIO | None = None
    total_steps: int = 0
    warnings: list[Warning_] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    failed: bool = False
    _step: int = 0
    _file: TextIO | None = None
    _t0: float = field(default_factory=time.perf_counter)

    first_step: int = 1

    def __post_init__(self) -> None:
        self._step = self.first_step - 1
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")

    def _write(self, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self._file is not None:
            self._file.write(f"{stamp} {line}\n")
            self._file.flush()
        if self.echo is not None:
            print(line, file=self.echo, flush=True)

    def step(self, label: str) -> None:
        """Start the next step."""
        self._step += 1
        self._write(f"Étape {self._step} sur {self.total_steps} : {label}")

    def info(self, message: str) -> None:
        self._write(message)

    def warn(self, warning: Warning_) -> None:
        """Record a warning of the generation (also written to the log)."""
        self.warnings.append(warning)
        self._write(f"AVERTISSEMENT {warning}")

    def error(self, message: str) -> None:
        """Record the error that stops the generation (in the file only: the caller reports it)."""
        self.failed = True
        if self._file is not None:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._file.write(f"{stamp} ERREUR {message}\n")

    def timed(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + seconds, 3)

    def close(self) -> None:
        elapsed = time.perf_counter() - self._t0
        if self.failed:
            if self._file is not None:
                self._file.write(f"Échec après {elapsed:.1f} s\n")
        elif self._step >= self.total_steps:
            self._write(f"Terminé en {elapsed:.1f} s")
        else:
            self._write(f"Étape {self._step} terminée en {elapsed:.1f} s")
        if self._file is not None:
            self._file.close()
            self._file = None


def write_report(path: Path, *, ouvrage: str, documents: list[dict[str, Any]], warnings: list[Warning_],
                 seconds: dict[str, float], counts: dict[str, Any], extra: dict[str, Any] | None = None) -> dict:
    """Write `report.json` and return its content."""
    codes: dict[str, int] = {}
    for w in warnings:
        codes[w.code] = codes.get(w.code, 0) + 1
    report = {
        "ouvrage": ouvrage,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "documents": documents,
        "counts": counts,
        "warnings": [asdict(w) for w in warnings],
        "warning_counts": codes,
        "seconds": seconds,
        **(extra or {}),
    }
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report
