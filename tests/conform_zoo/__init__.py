"""Independent implementations of nnref's ops, correct and deliberately wrong, that test
``nnref conform`` (``tests/test_conform_zoo.py``). NumPy only: none imports nnref."""
