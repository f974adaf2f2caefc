"""What segsync gives the tests of its plug-ins: the destination conformance kit
(:mod:`segsync.testing.conformance`). Nothing in segsync itself imports this package."""
