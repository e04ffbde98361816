"""dmvpnkit.labs"""
