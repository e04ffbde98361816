"""dmvpnkit.reports"""
