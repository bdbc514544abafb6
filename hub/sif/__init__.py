"""SIF XML at the edge (lxml): hardened parsing, XSD validation, envelope reading, building
acks and subscriber copies, and applying element filters."""
