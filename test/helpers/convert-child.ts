/**
 * A stand-in worker process for the conversion crash test: runs convertImage with the arguments given as
 * JSON and is SIGKILLed by the test in the middle of it.
 */
import { convertImage } from '../../activities/convert-image';

const [deps, input] = JSON.parse(process.argv[2]!) as Parameters<typeof convertImage>;
void convertImage(deps, input).then((r) => process.stdout.write(JSON.stringify(r)));
