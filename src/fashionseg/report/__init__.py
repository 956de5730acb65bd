"""The book's computations, one module per chapter section: tables, figures and readings from the runs'
files. (The older chapters still live in :mod:`fashionseg.reporting`.)"""
