"""Whether bytes can begin a pickle stream: the check the inventory makes on every unknown binary file,
kept apart from the pickle VM (auditor/parsers/picklevm.py) so that checking costs no VM import."""
from __future__ import annotations

__all__ = ["FRAME", "PROTO", "looks_like_pickle"]

# Opcodes pickle.load can execute first: those that need nothing on the stack (push a value or a mark,
# import a global, frame or declare the protocol). Everything else fails on an empty stack.
_FIRST_OPCODES = frozenset(b"(NIJKLMFGSTUVXBC])}cPgh") | {0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F,
                                                          0x82, 0x83, 0x84, 0x96, 0x97}
FRAME = 0x95
PROTO = 0x80


def looks_like_pickle(head: bytes) -> bool:
    """Whether bytes could begin a stream pickle.load accepts: PROTO 0-5, FRAME (then one of these),
    or any opcode that can run on an empty stack (protocol-0/1 streams have no header at all)."""
    if not head:
        return False
    if head[0] == PROTO:
        return len(head) < 2 or head[1] <= 5
    if head[0] == FRAME:
        if len(head) < 10:
            return True
        length = int.from_bytes(head[1:9], "little")
        return length > 0 and (head[9] in _FIRST_OPCODES or head[9] == PROTO)
    return head[0] in _FIRST_OPCODES
