"""dmvpnkit.nhrp"""
