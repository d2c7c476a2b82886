"""Settings read from files: `SUPPORTLENS_<NAME>_FILE=/run/secrets/x` or `SUPPORTLENS_SECRETS_DIR`.

Secrets (database password, API tokens, the secret key) are best mounted as files by the orchestrator
(Docker/Kubernetes secrets) rather than put in the environment, where they leak into process listings
and crash reports. Precedence: explicit arguments > environment variable > file > .env > default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

PREFIX = "SUPPORTLENS_"
MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretFileError(ValueError):
    pass


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_SECRET_FILE_BYTES:
            raise SecretFileError(f"{path} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        # A trailing newline is the usual artefact of `echo secret > file`.
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        # Name the file, never its content.
        raise SecretFileError(f"cannot read the settings file {path}: {exc.strerror}") from None


class FileSettingsSource(PydanticBaseSettingsSource):
    """`SUPPORTLENS_X_FILE` names a file holding the value of `SUPPORTLENS_X`; or a secrets directory."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self.environ = dict(os.environ if environ is None else environ)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env_name = f"{PREFIX}{field_name.upper()}"
        file_var = self.environ.get(f"{env_name}_FILE")
        if file_var:
            return _read(Path(file_var)), field_name, False
        directory = self.environ.get(f"{PREFIX}SECRETS_DIR")
        if directory:
            for candidate in (env_name, env_name.lower(), field_name):
                path = Path(directory) / candidate
                if path.is_file():
                    return _read(path), field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values
