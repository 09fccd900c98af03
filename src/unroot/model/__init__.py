"""The pure model of the kernel's privilege rules.

Nothing here touches files, sockets or processes.
"""
