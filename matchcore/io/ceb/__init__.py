"""Customs cross-border e-commerce XML (CEB311/411/511/621) in, CEB312-style receipts out.

`read_ceb` turns messages into raw SPEC §2 tables, `write_ceb` writes tables as messages,
`write_receipts` answers each order of a match result, `iter_messages` feeds streaming.
"""

from .reader import CebData, read_ceb
from .receipts import RETURN_STATUS, write_receipts
from .stream import iter_messages
from .writer import write_ceb

__all__ = ["RETURN_STATUS", "CebData", "iter_messages", "read_ceb", "write_ceb", "write_receipts"]
