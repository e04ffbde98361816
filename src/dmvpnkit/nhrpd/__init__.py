"""dmvpnkit.nhrpd"""
