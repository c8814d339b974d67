"""Pure, bounded readers of untrusted bytes: no findings, no policy, no I/O beyond what they are given."""
