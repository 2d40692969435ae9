"""Install every sql/functions/*.sql file (CREATE OR REPLACE; safe to re-run).

yoyo runs post-apply hooks after any run that applied a migration, so a change
to a function body ships with a (possibly comment-only) migration recording it.
"""
import sys
from pathlib import Path

from yoyo import step

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from wlsync_migrate import install_functions  # noqa: E402

steps = [step(install_functions)]
