"""Label renderers: pure functions from order data to Pillow images, plus encoders."""
