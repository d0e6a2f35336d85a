"""What several test modules share: builders of distillers, batch makers, run options.

Test modules import from here, never from each other.
"""
