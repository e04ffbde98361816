"""dmvpnkit.capture"""
