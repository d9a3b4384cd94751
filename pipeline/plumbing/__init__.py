"""Plumbing below the stages: what every stage, the runner and training share.

The accounting sink (`sink`), atomic writes (`atomic`), stable hashes (`hashing`) and the
snippets shown beside dropped rows (`snippets`). It imports no stage, so any stage may use it.
"""
