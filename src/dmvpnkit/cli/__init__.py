"""dmvpnkit.cli"""
