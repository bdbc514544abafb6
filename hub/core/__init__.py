"""Pure rules: envelope values, the object catalogue, agreements and routing policy, errors.

Nothing here performs I/O or imports an I/O library (checked by import-linter).
"""
