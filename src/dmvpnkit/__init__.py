"""dmvpnkit: a conformance harness for DMVPN (mGRE + NHRP + IPsec)."""

__version__ = "0.1.0"
