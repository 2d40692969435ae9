"""Install every sql/functions/*.sql file (CREATE OR REPLACE; safe to re-run).

yoyo runs post-apply hooks after any run that applied a migration, so a change
to a function body ships with a (possibly comment-only) migration recording it.
"""
import sys
from pathlib import Path

from yoyo import step

# In a checkout wlsync_migrate.py sits one directory up; an installed wheel has it
# importable already (this file is then wlsync_schema/migrations/post-apply.py).
checkout = Path(__file__).resolve().parent.parent
if (checkout / "wlsync_migrate.py").is_file():
    sys.path.insert(0, str(checkout))
from wlsync_migrate import install_functions  # noqa: E402

steps = [step(install_functions)]
