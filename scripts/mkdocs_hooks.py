"""MkDocs hook: replaces `<!-- table: NAME -->` with a table generated from the code (scripts/docs_tables.py)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_tables import TABLES  # noqa: E402


def on_page_markdown(markdown, page, config, files):
    return re.sub(r"<!-- table: ([\w-]+) -->", lambda m: TABLES[m.group(1)](), markdown)
