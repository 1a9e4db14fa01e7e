"""The worklist data source: files, lock protocol, index, matching, responses.

Knows nothing about sockets or pynetdicom (the split of DCMTK's dcmwlm: the data
source and file-system interaction manager apart from the activity manager). A
regular package, so ``packages = find:`` would ship it too; setup.cfg uses
``find_namespace:`` as well so that no directory of modules is ever left out of a
wheel (tests/packaging/test_wheel.py compares the wheel with the source tree).
"""
