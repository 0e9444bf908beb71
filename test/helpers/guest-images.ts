/**
 * Guest disks for tests: the builder lives in dev/guest-images.ts because the demo (dev/demo.ts) makes its
 * example disks with it too, and product-side code does not import from test/.
 */
export * from '../../dev/guest-images';
